/* Checking a safetensors file against a parameter table, tensor by tensor (internal to the io
 * room): the checks every loader of weights makes before and while it reads, with the one
 * message per problem that names the file and the tensor. */
#ifndef SEMAIM_IO_TENSORS_H
#define SEMAIM_IO_TENSORS_H
#include <stddef.h>
#include "semaim/err.h"
#include "semaim/params.h"
#include "semaim/safetensors.h"

/* "[a,b,c]" */
void st_shape_str(char *buf, size_t n, const long *shape, int ndim);
/* f's entry for the table tensor p (same name): NULL with ERR_INPUT when it is absent, has
 * another shape ("expected [..] <why>") or is not a floating-point dtype. */
const st_entry_t *st_expect(const st_file_t *f, const param_info_t *p, const char *why, err_t *err);
/* Reads e as float into dst and checks that every value is finite: 0, or -1 (ERR_INPUT naming
 * the file and the tensor, and whether it holds NaN or infinite values). */
int st_read_finite(const st_file_t *f, const st_entry_t *e, float *dst, err_t *err);
#endif
