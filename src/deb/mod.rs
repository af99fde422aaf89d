//! Reading a .deb: ar, control.tar, data.tar; selecting declared files while streaming.
