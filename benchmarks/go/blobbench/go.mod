module cargobay.local/blobbench

go 1.22
