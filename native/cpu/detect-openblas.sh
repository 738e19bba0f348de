#!/bin/sh
# Prints 1 when a program using cblas_sgemm compiles and links against -lopenblas (Debian's
# libopenblas-dev), else 0. ALPACA_NO_OPENBLAS=1 forces 0. Used by binding.gyp.
if [ "${ALPACA_NO_OPENBLAS:-0}" = "1" ]; then echo 0; exit 0; fi
tmp="${TMPDIR:-/tmp}/alpaca-openblas-$$"
printf '#include <cblas.h>\nint main(void){float a=1,b=1,c=0;cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,1,1,1,1.f,&a,1,&b,1,0.f,&c,1);return c!=1;}\n' > "$tmp.c"
if ${CC:-cc} "$tmp.c" -o "$tmp" -lopenblas >/dev/null 2>&1; then echo 1; else echo 0; fi
rm -f "$tmp" "$tmp.c"
