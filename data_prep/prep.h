/* semaim-prep: JPEG class-folder trees -> HDF5 shards. The library half (build/libprep.a) holds
 * everything; data_prep/main.c only calls prep_main(). Every symbol is prefixed prep_ because
 * this library is linked into every program of the project. The on-disk format is described
 * in data_prep/README.md. */
#ifndef SEMAIM_PREP_H
#define SEMAIM_PREP_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/clock.h"
#include "core/crc.h"
#include "core/files.h"
#include "core/json.h"
#include "core/slice.h"

/* 2: --store jpeg and the `store` attribute (raw shards of version 1 read as before) */
#define PREP_FORMAT_VERSION 2
enum { PREP_STORE_RAW = 0, PREP_STORE_JPEG = 1 };
extern const char *const prep_store_name[2];   /* "raw", "jpeg" */
#define PREP_MAX_SCANS 500              /* progressive scans per JPEG before we call it hostile */
#define PREP_DECODER_MEM (1024L << 20)  /* libjpeg working memory per image */
#define PREP_MAX_FILE (512L << 20)      /* larger "images" are skipped, not read */

/* ---------------------------------------------------------------- geometry, resize.c */
/* Resize to rw x rh, then keep the cw x ch window at (x0, y0) of the resized image. */
typedef struct { int rw, rh, cw, ch, x0, y0; } prep_geom;
/* Shorter side to `resize` (longer side truncated), centre crop crop x crop (offsets rounded
 * down): --store raw. */
void prep_geometry(int w, int h, int resize, int crop, prep_geom *g);
/* Longer side capped at max_side (shorter side rounded to nearest, at least 1; never
 * enlarged), no crop: --store jpeg. */
void prep_geometry_cap(int w, int h, int max_side, prep_geom *g);
/* JPEG DCT scaling numerator m (decode at m/8) for a w x h JPEG headed for geometry g. */
int prep_dct_scale(int w, int h, const prep_geom *g);

/* Filter taps of one axis: output j reads inputs start[j] .. start[j]+len[j]-1 with weights
 * w[j*k ..]. */
typedef struct { int n, k, cap_out, cap_k; int *start, *len; float *w; } prep_taps;
int prep_taps_build(prep_taps *t, int n_out, int offset, double scale, int n_in);
void prep_taps_free(prep_taps *t);

typedef struct {
    prep_taps tx, ty;
    int cx0, cx1, cy0, cy1;   /* decoded-pixel window the planned resample reads */
    float *tmp; size_t cap;
} prep_resampler;
int prep_resample_plan(prep_resampler *r, const prep_geom *g, double ext_w, double ext_h, int dw, int dh);
void prep_resample_run(prep_resampler *r, const uint8_t *src, size_t stride, int col0, int row0, uint8_t *out);
void prep_resampler_free(prep_resampler *r);

/* ---------------------------------------------------------------- decoding, decode.c */
enum { PREP_IMG_OK = 0, PREP_IMG_WARN = 1, PREP_IMG_SKIP = 2 };
typedef struct {
    int w, h;          /* JPEG size */
    int scale;         /* DCT scaling numerator used (decoded at scale/8) */
    int colorspace;    /* libjpeg J_COLOR_SPACE of the file */
    int adobe;         /* Adobe APP14 marker seen (CMYK is then stored inverted) */
    int progressive;
    int ycc;           /* 3-component YCbCr */
    int sw, sh;        /* --store jpeg: size of the stored image */
    int reencoded;     /* --store jpeg: 0 = the original bytes are stored */
    char msg[200];     /* skip reason or first libjpeg warning */
} prep_img_info;
typedef struct prep_decoder prep_decoder;
prep_decoder *prep_decoder_new(void);
void prep_decoder_free(prep_decoder *d);
/* Test knobs: decode every pixel instead of the needed window; never use DCT scaling. */
void prep_decoder_options(prep_decoder *d, int full_window, int no_dct_scale);
/* Names what data[0..n) is when it is not a JPEG ("empty file", "not a JPEG (PNG data)");
 * returns 0 for JPEG data. */
int prep_sniff(const uint8_t *data, size_t n, char *why, size_t len);
/* Decodes, converts to RGB, resizes and crops to out[crop][crop][3]. Returns PREP_IMG_*. */
int prep_decode(prep_decoder *d, const uint8_t *data, size_t n, int resize, int crop,
                uint8_t *out, prep_img_info *info);
/* Raw decode for tests: full image at scale m/8 as RGB (or CMYK when keep_cmyk and the file
 * is CMYK/YCCK, 4 channels). *out is malloc'd. Returns PREP_IMG_*. */
int prep_decode_raw(const uint8_t *data, size_t n, int m, int keep_cmyk, uint8_t **out,
                    int *w, int *h, int *channels, prep_img_info *info);
/* Baseline JPEG encoding (encode.c): one reusable output buffer per encoder. */
typedef struct prep_encoder prep_encoder;
prep_encoder *prep_encoder_new(void);
void prep_encoder_free(prep_encoder *e);
/* rgb (w x h x 3) at quality 1..100; *out is the encoder's buffer, valid until its next use.
 * 0, or -1 when out of memory. */
int prep_encode(prep_encoder *e, const uint8_t *rgb, int w, int h, int quality, const uint8_t **out, size_t *len);
/* --store jpeg: the bytes to store for one file (same skip rules and warnings as prep_decode).
 * A baseline 8-bit YCbCr JPEG within max_side that decodes without a warning is stored as it
 * is (*out = data); anything else is decoded (grayscale, CMYK and YCCK to RGB), resized with
 * the triangle filter so its longer side is at most max_side, and encoded as baseline JPEG
 * at `quality` into the decoder's own buffer (valid until its next use). Returns PREP_IMG_*. */
int prep_store_jpeg(prep_decoder *d, const uint8_t *data, size_t n, int max_side, int quality,
                    const uint8_t **out, size_t *len, prep_img_info *info);
/* Reads only the header: size, colour space, progressive; info->ycc = 1 for 3-component
 * YCbCr. 0, or -1 with info->msg (not a JPEG, corrupt header). */
int prep_header(prep_decoder *d, const uint8_t *data, size_t n, prep_img_info *info);
const char *prep_decoder_name(void);   /* library version and settings, for the recipe */
const char *prep_encoder_name(void);   /* --store jpeg's encoder and settings, likewise */
/* CMYK -> RGB for one row; Adobe files store inverted (255 - ink) samples. */
void prep_cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int n, int inverted);

/* ---------------------------------------------------------------- utilities, util.c
 * (buffers, JSON, files, CRC and the clock come from the project's core room) */
extern const char *prep_prog;                 /* "semaim-prep" or "semaim-prep convert" */
void prep_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t prep_fnv(uint64_t h, const void *data, size_t n);
uint64_t prep_fnv_str(uint64_t h, const char *s);
uint64_t prep_fnv_int(uint64_t h, int64_t v);
#define PREP_FNV0 0xCBF29CE484222325ull
uint64_t prep_splitmix(uint64_t *state);
uint64_t prep_bounded(uint64_t *state, uint64_t n);   /* uniform in [0, n) */
int prep_parse_long(const char *s, long lo, long hi, long *v);

/* ---------------------------------------------------------------- options and plan, scan.c */
enum { PREP_TRAIN = 0, PREP_VAL = 1 };
extern const char *const prep_split_name[2];

typedef struct {
    const char *src, *out;
    int shards[2];          /* per split */
    int store;              /* PREP_STORE_* */
    int size[2];            /* raw: crop side */
    int resize[2];          /* raw: shorter side before the crop */
    int max_side, quality;  /* jpeg: longer side cap and re-encoding quality */
    uint64_t seed;
    const char *val_labels, *val_class_order;
    int threads;            /* decoding threads per process (0: OpenMP default) */
    long range_lo, range_hi;/* global shard ids [lo, hi): train 0..T-1, then val */
    int ranged;             /* a range was given: manifest only when every shard is done */
    int task_i, task_n;     /* --task I/N: the I-th of N equal slices of all shards */
    int force;              /* convert even shards whose record and CRC match */
    double status_every;    /* seconds between status lines when stderr is not a terminal */
    int progress;           /* -1 auto, 0 none, 1 bar, 2 lines */
} prep_opts;
void prep_opts_default(prep_opts *o);

typedef struct { char *file, *reason; } prep_note;          /* file: path relative to ROOT */
typedef struct { prep_note *v; size_t n, cap; } prep_notes;
int prep_notes_add(prep_notes *ns, const char *file, const char *reason);
void prep_notes_sort(prep_notes *ns);
void prep_notes_free(prep_notes *ns);

typedef struct { char *rel; int32_t label; } prep_item;    /* rel: "train/<class>/<file>" */
typedef struct {
    int nclass; char **classes;
    prep_item *items[2]; size_t n[2];   /* per split, in dealt (shuffled) order */
    int shards[2];                      /* shard counts actually used */
    prep_notes skipped;                 /* files set aside while scanning */
    char val_labels[512];               /* where val labels came from */
} prep_plan;
int prep_plan_build(prep_plan *p, const prep_opts *o);   /* prints a one-line error on failure */
void prep_plan_free(prep_plan *p);
int prep_plan_pack(const prep_plan *p, buf_t *b);
int prep_plan_unpack(prep_plan *p, const char *data, size_t n);
/* Key stored in the shard: the path below the split directory. */
static inline const char *prep_item_key(const prep_item *it) {
    const char *s = it->rel;
    while (*s && *s != '/') s++;
    return *s ? s + 1 : it->rel;
}
void prep_shuffle(prep_item *items, size_t n, uint64_t seed, int split);

/* ---------------------------------------------------------------- shards, shard.c */
typedef struct {
    int split, index, count, nclass;
    int version;                 /* format_version (verify: the manifest's; 1 has no store) */
    int store;                   /* PREP_STORE_* */
    int size, resize;            /* raw */
    int max_side, quality;       /* jpeg */
} prep_shard_info;
void prep_h5_quiet(void);   /* we report HDF5 failures ourselves, in one line */
void prep_recipe_text(char *buf, size_t len, const prep_shard_info *si);
/* What a shard holds besides labels and keys: raw, n images of size x size x 3 in `images`;
 * jpeg, the bytes of image i at bytes[offsets[i] .. offsets[i+1]) and its size. */
typedef struct {
    const uint8_t *images;
    const uint8_t *bytes; const uint64_t *offsets; const int32_t *widths, *heights;
} prep_shard_data;
/* Writes a complete shard at path (the caller's temporary name). keys: n x keylen bytes,
 * NUL-padded. crash != 0 kills the process halfway (tests of resume). */
int prep_shard_write(const char *path, const prep_shard_info *si, size_t n, const prep_shard_data *px,
                     const int32_t *labels, const char *keys, size_t keylen, int crash, char *why, size_t wlen);
/* Re-reads a shard: attributes, shapes, types, layout, label range, non-empty keys; jpeg
 * shards also offsets, sizes and every image's JPEG header against them. */
int prep_shard_check(const char *path, const prep_shard_info *si, size_t n, char *why, size_t wlen);

/* ---------------------------------------------------------------- records and manifest, manifest.c */
typedef struct {
    int split, index, count;
    size_t images;
    uint64_t bytes, fp;
    uint32_t crc;
    prep_notes skipped, warnings;
    int valid;
} prep_record;
void prep_shard_name(int split, int index, int count, char *buf, size_t len);   /* "train/train-00000-of-01024.h5" */
void prep_record_path(const char *out, int split, int index, int count, char *buf, size_t len);
void prep_record_json(const prep_record *r, buf_t *b);
int prep_record_from_json(const json_t *v, prep_record *r);
int prep_record_load(const char *path, prep_record *r);
void prep_record_free(prep_record *r);
/* Writes OUT/.prep/plan.json: everything the manifest needs that is not in the records. */
int prep_planfile_write(const char *out, const prep_plan *p, const prep_opts *o, const uint64_t *fps);
/* Builds OUT/manifest.json from plan.json and the records. recs[g] (global shard id g) are
 * used when valid; the others are loaded from their record files and, with check_crc, their
 * shard files are CRC-checked. Returns 0 when written, 1 when some shard is unfinished,
 * -1 on error (message printed). */
int prep_manifest_assemble(const char *out, prep_record *recs, size_t nrecs, int check_crc, int *n_missing);

/* ---------------------------------------------------------------- MPI, comm.c */
/* Ranks when launched by mpirun/srun, else a single process that never touches MPI. */
typedef struct { int rank, size, mpi; } prep_comm;
void prep_comm_init(prep_comm *c, int *argc, char ***argv);
void prep_comm_finalize(prep_comm *c);
int prep_comm_any(const prep_comm *c, int flag);                /* logical OR over ranks */
int prep_comm_bcast(const prep_comm *c, buf_t *b);            /* rank 0's buffer to all */
int prep_comm_gather(const prep_comm *c, const buf_t *mine, buf_t *all);  /* concatenation on rank 0 */
long prep_comm_sum(const prep_comm *c, long v);
void prep_comm_barrier(const prep_comm *c);

/* ---------------------------------------------------------------- progress, progress.c */
typedef struct {
    double t0, last;
    size_t total, done, base;   /* base: items already done when we started (resumed shards) */
    int mode;                   /* 0 silent, 1 bar, 2 status lines */
    double every;
    int rank, size, drawn;
} prep_progress;
void prep_progress_start(prep_progress *p, size_t total, int mode, double every, const prep_comm *c);
void prep_progress_update(prep_progress *p, size_t done, size_t base, int force);
void prep_progress_clear(prep_progress *p);   /* erase the bar before printing other lines */
void prep_progress_end(prep_progress *p);

/* ---------------------------------------------------------------- commands */
int prep_convert(const prep_opts *o, const prep_comm *c);
int prep_verify(const char *out, const prep_comm *c);
int prep_manifest_cmd(const char *out);
typedef struct { const char *src, *out; long limit; int quality, threads; } prep_fmnist_opts;
int prep_fmnist(const prep_fmnist_opts *o);
int prep_main(int argc, char **argv);   /* the whole command line tool */

#endif
