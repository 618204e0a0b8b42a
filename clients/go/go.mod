module hevlayer

go 1.19
