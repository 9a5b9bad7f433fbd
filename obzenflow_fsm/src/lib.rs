//! obzenflow_fsm.
