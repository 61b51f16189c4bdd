//! dschat-server
