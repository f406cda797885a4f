module goroscope.bench/manysites

// Old enough for Debian's go 1.19; the bench builds with the machine's go.
go 1.19
