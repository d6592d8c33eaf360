//! Shared code of the compiled bench helpers: the load executor of the compiled load clients.
pub mod load;
