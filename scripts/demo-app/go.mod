module gmon.demo/app

go 1.19
