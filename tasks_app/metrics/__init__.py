"""Run statistics: the rollup of finished runs into `JobHourStats` / `JobTotals` (`rollup`),
percentile estimates from their histograms (`quantiles`) and the Prometheus exposition
(`exposition`)."""
