#ifndef CONVEYOR_CZLIB_SHIM_H
#define CONVEYOR_CZLIB_SHIM_H
#include <zlib.h>
/* inflateInit2 is a macro over inflateInit2_ that passes the library's
   version and the stream's size; Swift cannot call the macro. */
static inline int czlib_inflate_init_raw(z_stream *stream) {
    return inflateInit2(stream, -MAX_WBITS);
}
#endif
