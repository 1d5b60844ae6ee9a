#ifndef CINT8_H
#define CINT8_H
int cint8_placeholder(void);
#endif
