//! The registry's tables. Models and components share them, told apart by
//! `kind`: they have the same life, and one set of rules serves both.

pub mod entries;
pub mod migration;
pub mod settings;
pub mod stages;
pub mod versions;
