//! One HTTP adapter per payment provider, behind one trait per capability (collect, refund,
//! payout, purchase, publish). Only workers call these; the API never does.
