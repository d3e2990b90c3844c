//! The Sluice watchtower (DESIGN.md §6): users register and hand over the latest co-signed state
//! of their channels; the tower stores it before signing a receipt, follows the chain from its
//! last processed height, and challenges any close with an older version inside the window.

pub mod fixtures;
pub mod store;
