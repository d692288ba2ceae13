-- Cost-aware portfolio construction: what the optimiser expected to pay and how sure it was.

-- turnover_penalty x turnover, fraction of equity
alter table ops.portfolio_diagnostics add column if not exists expected_cost double precision not null default 0;
-- names whose trade, smaller than the no-trade band, was not made
alter table ops.portfolio_diagnostics add column if not exists band_held_back integer not null default 0 check (band_held_back >= 0);
-- the information coefficient the expected returns were scaled by
alter table ops.portfolio_diagnostics add column if not exists ic_used double precision;
-- where it came from: realised (the model's recent record), validation (fallback), configured (score_ic)
alter table ops.portfolio_diagnostics add column if not exists ic_source text check (ic_source in ('realised', 'validation', 'configured'));
-- the conviction in full: mean realised IC, its standard error, sessions, fallback note
alter table ops.portfolio_diagnostics add column if not exists conviction jsonb;
-- what the user should know about the weights (e.g. top_k holding the whole universe)
alter table ops.portfolio_diagnostics add column if not exists warnings text[] not null default '{}';
