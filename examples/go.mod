module github.com/sturdyai/sturdy/examples

go 1.26

require github.com/sturdyai/sturdy v0.0.0

replace github.com/sturdyai/sturdy => ../
