/* placeholder */
#ifndef PGKEEL_CHILD_H
#define PGKEEL_CHILD_H
#endif
