module goroscope.test/targets

go 1.21
