module goroscope.test/target

go 1.21
