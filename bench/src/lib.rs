//! The gateway's benchmark harness as a library, so that its integration test drives the same
//! code as the `bench` binary.

pub mod clock;
pub mod compare;
pub mod gateway_under_test;
pub mod load;
pub mod metrics_text;
pub mod policy_fixture;
pub mod report;
pub mod temp_postgres;
pub mod thread_cpu;
