int m_idx(void) { return 1; }
