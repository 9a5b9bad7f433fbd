//! obzenflow_runtime.
