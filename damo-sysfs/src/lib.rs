//! DAMON's sysfs interface: read what runs, start/tune/stop our own kdamonds.
