#ifndef CONVEYOR_CMOSQUITTO_SHIM_H
#define CONVEYOR_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
