module goroscope.test/panicker

go 1.21
