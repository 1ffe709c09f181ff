#ifndef CONVEYOR_COPENBLAS_SHIM_H
#define CONVEYOR_COPENBLAS_SHIM_H
#include <cblas.h>
/* Declared by OpenBLAS (openblas_config.h / cblas.h) but repeated here so the
   shim compiles against builds whose cblas.h hides them. */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
char *openblas_get_config(void);
#endif
