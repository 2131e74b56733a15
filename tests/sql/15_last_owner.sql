-- Every organization keeps at least one owner, whoever tries (an owner, the service role) and
-- however (removing, demoting, moving the membership, one statement for all owners). Deleting
-- the organization itself still removes every member. Refusals are SQLSTATE PT409 (HTTP 409).
-- Two owners removing each other at the same moment: tests/py/test_last_owner.py (two sessions).
begin;
select plan(12);

select tests.create_fixture_table();
do $$
declare
  v_org_a uuid := tests.create_organization('Acme');
  v_org_b uuid := tests.create_organization('Bystander');
  v_user record;
begin
  insert into fx values ('org_a', v_org_a), ('org_b', v_org_b);
  for v_user in
    select * from (values
      ('owner_a', v_org_a, 'owner'), ('owner2_a', v_org_a, 'owner'), ('admin_a', v_org_a, 'admin'),
      ('owner_b', v_org_b, 'owner'), ('member_b', v_org_b, 'member')
    ) as u (name, organization_id, role)
  loop
    insert into fx values (v_user.name, tests.create_user(v_user.name || '@owners.test', v_user.organization_id));
    perform tests.add_member(v_user.organization_id, pg_temp.id(v_user.name), v_user.role);
  end loop;
end
$$;

-- With two owners, one may go ------------------------------------------------------------------

select tests.authenticate_as(pg_temp.id('owner_a'));
select lives_ok(
  $$update public.organization_members set role = 'admin' where user_id = pg_temp.id('owner2_a')$$,
  'an owner can demote another owner while one owner remains'
);

-- The last owner stays -------------------------------------------------------------------------

select throws_ok(
  $$delete from public.organization_members where user_id = pg_temp.id('owner_a')$$,
  'PT409', 'an organization must keep at least one owner',
  'the last owner cannot remove themselves'
);
select throws_ok(
  $$update public.organization_members set role = 'member' where user_id = pg_temp.id('owner_a')$$,
  'PT409', null,
  'the last owner cannot demote themselves'
);
select throws_ok(
  $$delete from public.organization_members where organization_id = pg_temp.id('org_a')$$,
  'PT409', null,
  'one statement cannot remove every member, owners included'
);
select lives_ok(
  $$update public.organization_members set role = 'owner' where user_id = pg_temp.id('owner2_a')$$,
  'the last owner can promote another member to owner'
);
select lives_ok(
  $$delete from public.organization_members where user_id = pg_temp.id('owner_a')$$,
  'once another owner exists, the former last owner can leave'
);

select tests.authenticate_as_service_role();
select throws_ok(
  $$delete from public.organization_members where user_id = pg_temp.id('owner_b')$$,
  'PT409', null,
  'the service role cannot remove the last owner either'
);
select throws_ok(
  $$update public.organization_members set role = 'admin' where user_id = pg_temp.id('owner_b')$$,
  'PT409', null,
  'the service role cannot demote the last owner'
);
select throws_ok(
  $$update public.organization_members set organization_id = pg_temp.id('org_a') where user_id = pg_temp.id('owner_b')$$,
  'PT409', null,
  'moving the last owner''s membership to another organization is refused'
);
select lives_ok(
  $$delete from public.organization_members where user_id = pg_temp.id('member_b')$$,
  'members who are not owners can still be removed'
);

select tests.clear_authentication();
select throws_ok(
  $$delete from auth.users where id = pg_temp.id('owner_b')$$,
  'PT409', null,
  'the last owner''s account cannot be deleted while it owns an organization'
);
select lives_ok(
  $$delete from public.organizations where id = pg_temp.id('org_b')$$,
  'deleting the organization removes its last owner with it'
);

select * from finish();
rollback;
