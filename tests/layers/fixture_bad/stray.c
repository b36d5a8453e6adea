/* Not in the level table. */
int stray_zero(void);

int stray_zero(void) {
    return 0;
}
