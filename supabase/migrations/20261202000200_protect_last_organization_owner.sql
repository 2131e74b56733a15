-- Every organization keeps at least one owner: nobody could manage its keys or members otherwise.
--
-- Objects: private.assert_organization_keeps_an_owner() and its constraint trigger on
-- public.organization_members (delete, or a change of role or organization).
-- Refused with SQLSTATE PT409 (PostgREST answers HTTP 409), for every role, the service role
-- included. Deleting the organization itself still removes all of its members.
-- Grants: none; the trigger function needs no EXECUTE grant.

-- Definer: must count every owner and lock the organization past RLS; as the invoker, an owner
-- who has just removed themselves no longer sees their organization and would pass unchecked.
-- An after-row trigger: it sees the table as the whole statement left it.
create function private.assert_organization_keeps_an_owner()
returns trigger
language plpgsql
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  if old.role <> 'owner' then
    return null;
  end if;
  -- The organization's row lock serializes concurrent changes of its owners: two owners who
  -- demote each other at once are counted one after the other, not both against the old state.
  -- No row: the organization itself is being deleted, which takes its members with it.
  perform from public.organizations as o where o.id = old.organization_id for no key update;
  if not found then
    return null;
  end if;
  if not exists (
    select from public.organization_members as m
    where m.organization_id = old.organization_id and m.role = 'owner'
  ) then
    raise exception using
      errcode = 'PT409',
      message = 'an organization must keep at least one owner',
      hint = 'Make another member an owner first, or delete the organization.';
  end if;
  return null;
end
$$;

comment on function private.assert_organization_keeps_an_owner() is
'Refuses (PT409) a change to organization_members that leaves an organization without an owner.';

create trigger organization_members_keep_an_owner
after update of role, organization_id or delete on public.organization_members
for each row execute function private.assert_organization_keeps_an_owner();

-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.assert_organization_keeps_an_owner() from public;
