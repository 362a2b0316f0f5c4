/* Buffers that the compiled modules take from Python: C-contiguous, of one struct type,
 * of a given item count; anything else refused with a ValueError that names it. */
#ifndef NEURALZIP_BUFFERS_H
#define NEURALZIP_BUFFERS_H

#include <Python.h>

/* Whether a buffer's struct format is ``type``: 'd' float64, 'f' float32, 'q' int64, 'i' int32, 'h' int16. */
static inline int format_is(const Py_buffer *view, char type) {
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (f[0] && f[1]) return 0;
    if (f[0] == type) return 1;
    if (type == 'q' && (f[0] == 'l' || f[0] == 'q') && view->itemsize == 8) return 1; /* int64: 'l' on LP64 */
    if (type == 'i' && f[0] == 'l' && view->itemsize == 4) return 1;
    return 0;
}

/* A C-contiguous buffer of ``count`` items of struct type ``type`` (any count if < 0). */
static inline int get_buffer(PyObject *obj, Py_buffer *view, char type, Py_ssize_t count, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (!format_is(view, type) || (count >= 0 && view->len != count * view->itemsize)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of type '%c', got %zd bytes of type '%s'",
                     what, count, type, view->len, view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#endif
