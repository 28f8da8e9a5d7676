#ifndef LOW_H
#define LOW_H
int low(void);
#endif
