//! Scale tests: many objects on a control plane and an operator of their
//! own, so their load never slows the functional integration tests (test
//! binaries run one after another).

mod churn;
#[path = "../integration/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../integration/expiry_proxy.rs"]
#[allow(dead_code)]
mod expiry_proxy;
