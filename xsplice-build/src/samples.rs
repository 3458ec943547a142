//! `xsplice-build samples`: build every sample patch in `sample-patches/`.
