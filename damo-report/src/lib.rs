//! Offline reports over DAMON records, with damo's option names, units and output formats.
