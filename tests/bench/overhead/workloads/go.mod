module goroscope.bench/overhead

// Go 1.23: the timer semantics current programs get (a channel timer is in
// a runtime heap only while someone waits on it). run.py builds with an
// older toolchain through a go 1.19 copy of this file (-modfile), since an
// older runtime has only the old semantics anyway.
go 1.23
