//! Call state machine tests (virtual time).
