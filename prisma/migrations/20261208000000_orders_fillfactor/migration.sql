-- An order is updated long after it is placed (paid, cancelled, expired), when its page is full
-- and has gone cold. With every page filled to the brim, the new version moved to another page
-- and left a hole in the old one; VACUUM then offered those holes to the next inserts, so new
-- orders were written one by one into old pages scattered over the table: a page read from
-- outside shared_buffers and a full-page image in the WAL for nearly every order once the table
-- outgrew the cache (measured at 10⁶ events: 0.47 of each per order, all in read.orders; 0.04 at
-- 10⁵). With 10 % of each page kept free for them, an update stays on its page, the page keeps
-- its rows, and inserts go to the end of the table. Applies to pages written from now on
-- (`VACUUM FULL` rewrites the old ones).
ALTER TABLE "write"."orders" SET (fillfactor = 90);
ALTER TABLE "read"."orders" SET (fillfactor = 90);
