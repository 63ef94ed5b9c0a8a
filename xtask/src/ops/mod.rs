//! Effects: the executor every change goes through, processes and signals, git, Docker, cargo,
//! retries, provisioning the machine, and the throwaway services of rehearsals and benchmarks.

pub mod audit;
pub mod cargo;
pub mod docker;
pub mod exec;
pub mod files;
pub mod git;
pub mod interrupt;
pub mod provision;
pub mod retry;
pub mod sandbox;
pub mod secrets;
pub mod shell;
pub mod toolchain;
pub mod ui;
pub mod yanks;
