module gmon.bench/app

go 1.19
