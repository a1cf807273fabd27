-- Knowledge base for self-service (SPEC.md §2): simple, frequent questions a bot may
-- answer first. Triage compiles each active article's terms into its rule database
-- and attaches the matching article to the ticket as a suggested answer.
-- Applied by `sbctl migrate` in one transaction with its schema_migrations row.

CREATE TABLE kb_articles (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,63}$'),
    title           text NOT NULL,
    locale          text NOT NULL DEFAULT 'zh-CN',
    terms           text[] NOT NULL CHECK (cardinality(terms) > 0),
    answer          text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kb_articles IS
    'Self-service answers; terms are literal phrases matched by triage (case-insensitive)';

-- Starter articles; operators edit or replace them.
INSERT INTO kb_articles (id, title, locale, terms, answer) VALUES
    ('order-status-zh', '如何查询订单状态', 'zh-CN',
     ARRAY['查订单', '订单到哪了', '查询订单', '订单进度'],
     '在 App“我的-订单”中点击订单即可查看状态与物流进度；如超过预计时间未更新，请回复“人工”。'),
    ('return-policy-zh', '退货政策', 'zh-CN',
     ARRAY['退货政策', '七天无理由', '怎么退货', '如何退货', '能退货吗'],
     '签收后 7 天内、商品完好可申请无理由退货：在订单详情中点击“申请售后”，审核在 24 小时内完成。'),
    ('promotion-rules-zh', '促销活动规则', 'zh-CN',
     ARRAY['活动规则', '满减规则', '优惠券怎么用', '优惠券使用'],
     '满减与优惠券在结算页自动计算，一笔订单可用一张店铺券和一张平台券；具体以活动页说明为准。'),
    ('order-status-en', 'Where is my order', 'en',
     ARRAY['where is my order', 'track my order', 'order status', 'track order'],
     'Open Orders in the app and select the order to see its status and tracking. Reply "agent" if it has not moved for longer than the estimate.'),
    ('return-policy-en', 'Return policy', 'en',
     ARRAY['return policy', 'how do i return', 'how to return', 'can i return'],
     'Items in their original condition can be returned within 7 days of delivery: choose "Return" on the order; reviews finish within 24 hours.'),
    ('password-reset-en', 'Resetting a password', 'en',
     ARRAY['forgot my password', 'reset my password', 'recover my password', 'forgot password'],
     'Choose "Forgot password" on the sign-in page and follow the link sent to your email or phone.')
ON CONFLICT (id) DO NOTHING;
