//! Reports on DAMON records, giving damo's answers: the same filters, numbers and line
//! formats, from any record damo-trace reads.

pub mod access;
pub mod accumulate;
pub mod address_union;
pub mod adjust;
pub mod chart;
pub mod colors;
pub mod dist;
pub mod filter;
pub mod footprints;
pub mod heatmap;
pub mod holistic;
pub mod image;
pub mod names;
pub mod nr_regions;
pub mod pa_layout;
pub mod phases;
pub mod plot_frame;
pub mod record_info;
pub mod times;
pub mod trace;
pub mod validate;
pub mod wss;
pub mod xml;
