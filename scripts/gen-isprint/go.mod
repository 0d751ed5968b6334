module gmon.tools/gen-isprint

go 1.21
