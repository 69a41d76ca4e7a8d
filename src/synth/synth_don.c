/*
 * synth_don.c - synthetic donations in the Electoral Commission layout, with ground truth.
 */
#include "synth/synth_int.h"

int sy_donations_area(struct sy_run *run, struct sy_area *a, uint64_t n)
{
    (void)run;
    (void)a;
    (void)n;
    return 0;
}

int sy_donations_write(struct sy_run *run)
{
    (void)run;
    return 0;
}

void sy_donations_free(struct sy_run *run)
{
    (void)run;
}
