module goroscope.probe/golayout

go 1.21
