# The native CPU backend addon (alpaca_cpu.node). Built by `npm install` through build.mjs; links
# OpenBLAS when detect-openblas.sh finds Debian's libopenblas-dev, else uses the own GEMM kernel.
{
  'variables': {
    'openblas%': '<!(sh ./detect-openblas.sh)',
  },
  'targets': [
    {
      'target_name': 'alpaca_cpu',
      'sources': [
        'src/addon.cpp',
        'src/pool.cpp',
        'src/binding/args.cpp',
        'src/binding/tensor-memory.cpp',
        'src/binding/memory.cpp',
        'src/binding/elementwise.cpp',
        'src/binding/layers.cpp',
        'src/binding/loss-optim.cpp',
        'src/binding/runtime.cpp',
        'src/binding/quantize.cpp',
        'src/kernels/elementwise.cpp',
        'src/kernels/columns.cpp',
        'src/kernels/layers.cpp',
        'src/kernels/gemm.cpp',
        'src/kernels/gemm-own.cpp',
        'src/kernels/gemm-bf16.cpp',
        'src/kernels/gemm-blas.cpp',
        'src/kernels/matmul.cpp',
        'src/kernels/matvec.cpp',
        'src/kernels/matvec-bf16.cpp',
        'src/kernels/matvec-packed.cpp',
        'src/kernels/quant-dequant.cpp',
        'src/kernels/quant-int8.cpp',
        'src/kernels/quantize.cpp',
        'src/kernels/attention.cpp',
        'src/kernels/attention-paged.cpp',
        'src/kernels/loss-optim.cpp',
      ],
      'defines': ['NAPI_VERSION=8'],
      'cflags': ['-O3', '-fno-math-errno', '-fno-trapping-math', '-Wno-psabi'],
      'cflags_cc': ['-std=gnu++17'],
      'libraries': ['-pthread'],
      'conditions': [
        ['openblas==1', {
          'defines': ['HAVE_OPENBLAS'],
          'libraries': ['-lopenblas'],
        }],
      ],
    },
  ],
}
