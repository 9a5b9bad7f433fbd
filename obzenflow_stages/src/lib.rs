//! obzenflow_stages.
