-- Portfolio construction (quant.portfolio.optimize_portfolio): one set of rows per session.
-- A rerun of a session replaces its rows; the run that wrote them is in run_id.

-- Target weights, fractions of equity. Names held before and sold now are stored with weight 0.
create table if not exists ops.target_weights (
    run_id        text             not null,
    session_date  date             not null,
    symbol        text             not null,
    weight        double precision not null check (weight <> 'NaN' and abs(weight) <= 20),
    method        text             not null,
    created_at    timestamptz      not null default now(),
    primary key (session_date, symbol)
);
create index if not exists target_weights_run_idx on ops.target_weights (run_id, session_date);

-- What the optimiser did for a session: figures of the kept weights and every attempt of the chain.
create table if not exists ops.portfolio_diagnostics (
    session_date     date             primary key,
    run_id           text             not null,
    method           text             not null,
    method_used      text             not null,
    stage            text             not null
        check (stage in ('primary', 'relax_turnover', 'hrp', 'hold', 'cash')),
    fallback_used    boolean          not null,
    limits_relaxed   text[]           not null default '{}',
    ex_ante_vol      double precision not null,
    expected_return  double precision not null,
    turnover         double precision not null,
    n_names          integer          not null check (n_names >= 0),
    gross_exposure   double precision not null,
    net_exposure     double precision not null,
    vol_scale        double precision not null,
    n_candidates     integer          not null check (n_candidates >= 0),
    excluded         text[]           not null default '{}',
    attempts         jsonb            not null,
    settings         jsonb            not null,
    created_at       timestamptz      not null default now()
);
