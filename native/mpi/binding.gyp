# The MPI addon (alpaca_mpi.node): rank, size and in-place all-reduce for data-parallel training. Built by
# build.mjs with the flags Open MPI's compiler wrapper reports; absent when MPI is not installed.
{
  'variables': {
    'mpi_cflags%': '<!(mpicxx --showme:compile)',
    'mpi_libs%': '<!(mpicxx --showme:link)',
  },
  'targets': [
    {
      'target_name': 'alpaca_mpi',
      'sources': ['src/mpi-addon.cpp'],
      'defines': ['NAPI_VERSION=8'],
      'cflags': ['-O2', '<@(mpi_cflags)'],
      'cflags_cc': ['-std=gnu++17'],
      'libraries': ['<@(mpi_libs)', '-ldl'],
    },
  ],
}
