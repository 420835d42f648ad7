/* The converter's JPEG path (data_prep/decode.c, data_prep/resize.c): sniffing, libjpeg-turbo
 * decoding of the crop's window, CMYK/YCCK conversion, DCT scaling and the antialiased
 * resize and crop, on arbitrary bytes. The first three bytes choose the shorter side after
 * resizing (1..320), the crop (1..that) and the test knobs (full window, no DCT scaling); the
 * rest is the file. One decoder serves every input, as one converter thread does. Beyond
 * not crashing: a skip or a warning has a reason, and a decoded image has a size and scale. */
#include "prep.h"
#include "fuzz.h"

static prep_decoder *dec;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 3) return 0;
    if (!dec && !(dec = prep_decoder_new())) abort();
    int resize = 1 + data[0] % 320, crop = 1 + data[1] % resize;
    prep_decoder_options(dec, data[2] & 1, (data[2] >> 1) & 1);
    size_t bytes = (size_t)crop * crop * 3;
    uint8_t *out = malloc(bytes);
    if (!out) return 0;
    memset(out, 0xA5, bytes);
    prep_img_info info;
    int rc = prep_decode(dec, data + 3, n - 3, resize, crop, out, &info);
    FUZZ_CHECK(rc == PREP_IMG_OK || rc == PREP_IMG_WARN || rc == PREP_IMG_SKIP, "result %d", rc);
    FUZZ_CHECK(rc == PREP_IMG_OK || info.msg[0], "result %d without a reason", rc);
    if (rc != PREP_IMG_SKIP) FUZZ_CHECK(info.scale >= 1 && info.scale <= 8 && info.w > 0 && info.h > 0, "scale %d size %dx%d", info.scale, info.w, info.h);
    free(out);
    return 0;
}
