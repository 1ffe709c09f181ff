#ifndef CONVEYOR_CTURBOJPEG_SHIM_H
#define CONVEYOR_CTURBOJPEG_SHIM_H
#include <stddef.h>
#include <turbojpeg.h>
#endif
