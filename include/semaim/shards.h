/* Dataset shards: discovery, validation and image reads with the serial HDF5 C API.
 *
 * Layout (written by data_prep; read here independently of its code):
 *   <data>/<split>/<split>-KKKKK-of-MMMMM.h5   (or the files directly in <data>)
 *   raw:  /images uint8 [N,H,W,3] RGB, every image the same size;
 *   jpeg: /jpeg uint8 [bytes] (image i is bytes offsets[i] .. offsets[i+1]−1, a JPEG file),
 *         /offsets integer [N+1] (0 first, then increasing, the last = the byte count),
 *         /widths and /heights integer [N] (its size, 1..65535);
 *   both: /labels integer [N], /keys strings [N], root attributes.
 * Which layout a shard has is told by its datasets (/jpeg or /images); all shards of a set
 * must have the same. The loader needs only these and /labels; the shard index and count come
 * from the file name (every index 0..M−1 must be present). Global sample id = position in the
 * concatenation of the shards in index order. Integer root attributes are checked when
 * present: format_version (1 or SHARDS_FORMAT_VERSION; 1 is raw only), shard_index and
 * shard_count (must match the name), num_classes (same in every shard; labels must be below
 * it); the string attribute store ("raw" or "jpeg") must name the layout when present.
 * /keys and manifest.json are not read (the manifest's crc32s are for `semaim-prep verify`:
 * checking them here would read the whole data set at every start).
 *
 * HDF5 (Debian's serial build) is not thread-safe: every HDF5 call in the process must hold
 * shards_hdf5_lock(). The loader thread takes it around each batch's reads; any other code
 * calling HDF5 while a loader runs (e.g. checkpoint I/O) must take it too. */
#ifndef SEMAIM_SHARDS_H
#define SEMAIM_SHARDS_H
#include <stdint.h>
#include "semaim/err.h"

#define SHARDS_FORMAT_VERSION 2

typedef struct {
    char *path;   /* full file name */
    int index;    /* K of K-of-M */
    long n;       /* images */
    long first;   /* global id of its image 0 */
    long long bytes, mtime_ns;   /* the file as the scan saw it: a shard must not change under a job */
} shard_info;

typedef struct {
    char *dir;          /* directory holding the shards */
    int count;          /* M; sh[k].index == k */
    shard_info *sh;
    long total;         /* images over all shards */
    int jpeg;           /* 1: the jpeg layout */
    int H, W;           /* raw: image size, the same in every shard; jpeg: 0 (sizes vary) */
    int max_h, max_w;   /* largest height and width of any image (raw: H, W) */
    int num_classes;    /* from the num_classes attribute; 0 if the shards do not say */
} shard_set;

void shards_hdf5_lock(void);
void shards_hdf5_unlock(void);

/* Finds <split>-K-of-M.h5 under data_dir/split (or data_dir), checks the set is complete
 * and that every shard opens and has consistent /images and /labels. 0, or -1 with a
 * one-line error naming the path and problem (ERR_INPUT); on error *s is left empty. Takes
 * the HDF5 lock itself. */
int shards_scan(shard_set *s, const char *data_dir, const char *split, err_t *err);
void shards_free(shard_set *s);
/* Shard holding global id g (0 ≤ g < total); *local = index inside it. */
int shards_locate(const shard_set *s, long g, long *local);

/* Reads images with an LRU cache of open files (at most max_open) and each shard's labels
 * (read whole on first use, kept). Caller holds the HDF5 lock. */
typedef struct shard_reader shard_reader;
shard_reader *shard_reader_new(const shard_set *s, int max_open);
/* count consecutive images local..local+count−1 of shard k into dst (count·H·W·3 bytes) with
 * one H5Dread, and their labels into lab. 0, or -1 with a one-line error naming the shard
 * (ERR_INPUT: the file vanished, changed or cannot be read since the scan). A shard's size
 * and modification time must stay what the scan saw: checked when it is (re)opened and after
 * every read from it, so a shard removed, cut, rewritten or replaced under a running job is
 * an error naming it (exit 2), never zeros or another file's images read as data. */
int shard_reader_read(shard_reader *r, int k, long local, long count, uint8_t *dst, int32_t *lab, err_t *err);
/* jpeg sets: where one image's bytes landed in the caller's buffer, and its size. */
typedef struct { size_t at, len; int w, h; } shard_jpeg;
/* count consecutive images local..local+count−1 of shard k of a jpeg set, appended with one
 * H5Dread at *used bytes into *buf (grown with mem_grow when short: the buffer reaches the
 * largest run once and is then reused); refs[i] and lab[i] describe image i. 0, or -1 with a
 * one-line error naming the shard (ERR_INPUT; ERR_RUNTIME when out of memory). */
int shard_reader_read_jpeg(shard_reader *r, int k, long local, long count, uint8_t **buf, size_t *cap, size_t *used,
                           shard_jpeg *refs, int32_t *lab, err_t *err);
/* Closes every file (caller holds the HDF5 lock) and frees r. */
void shard_reader_free(shard_reader *r);
#endif
